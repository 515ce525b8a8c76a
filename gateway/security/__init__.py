"""Access control and audit: who is calling (tokens, SMART scopes), what they may do, and the trail they leave."""
