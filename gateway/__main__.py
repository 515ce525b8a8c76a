"""`python -m gateway` runs the `pulsebridge` CLI."""
from gateway.cli import main

main()
