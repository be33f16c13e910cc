"""Readers of the OpenAI wire shapes (requests, responses, chunks), as dicts or SDK objects."""
