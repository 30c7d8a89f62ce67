"""The ConsentGate service: Flask app, database, accounts, likeness consent, the generation gate, CLI."""
