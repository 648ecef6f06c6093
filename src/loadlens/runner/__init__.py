"""The sweep runner: load an OpenAI-compatible endpoint level by level, record every
request and the server's own signals, and store each completed level at once."""
