"""Command-line interface (Typer + Rich). Thin: load, call one function, render."""
