"""The application around the handlers. Importing the package loads nothing else: each layer
imports only the layers beneath it (docs/design.md, "How it is built")."""
