"""The rules: what a user may do with their tasks, whichever door the request came in by (HTTP
handlers, MCP tools, chat). Each use case takes the contract's values, applies the rules no
schema can state, and calls storage; it raises domain errors only."""
