"""Detection: the Presidio engine and our own recognisers."""
