"""The likeness domain's services: consent (likenesses), enrollment, disputes and figures. Each takes a
session and typed inputs, knows nothing of Flask and never commits."""
