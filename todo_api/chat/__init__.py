"""The chatbot: the agent on an OpenAI-compatible model, its answers streamed, and ChatKit's
server. Its tools are the MCP door's, handed in by the composition root (todo_api/app.py)."""
