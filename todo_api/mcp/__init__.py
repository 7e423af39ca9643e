"""The MCP door: the operations the contract marks `x-mcp-tool`, as tools an agent calls."""
