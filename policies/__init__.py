"""Rights-holder character rules, likeness-consent modes and prompt screening: pure decisions with reasons."""
