"""Teen accounts and their guardians (issue 16): stricter defaults for a minor's likeness, every grant approved by
the guardian, the guardian told of every use and able to take any video of the minor down (``docs/guardians.md``)."""
