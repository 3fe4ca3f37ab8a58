"""The warm path: `llm-exec-daemon` keeps the SDKs imported behind a Unix socket, and the executors
forward their task to it when it answers (see protocol.py for the wire format).

Nothing is imported here: the executors import `llm_exec.daemon.client` on every start.
"""
