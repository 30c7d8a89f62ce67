"""Characters: rights holders' registered characters, their rules, reference images and usage."""
