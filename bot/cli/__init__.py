"""The command line: `evidence-bot` (bot.cli.main) and what each of its commands does.

Nothing is imported here, so importing one module of the package does not load the whole
command line.
"""
