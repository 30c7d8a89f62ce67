"""The generation domain's services: requests and takedowns (generations), reviews of held generations and
the consent record. Each takes a session and typed inputs, knows nothing of Flask and never commits."""
