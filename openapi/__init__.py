"""The contract, `openapi.yaml`: a package only so that the file is installed with the code
(pyproject.toml ships it as package data); todo_api/contract.py reads it from here."""
