"""The command line: `evidence-bot` (bot.cli.main) and what each of its commands does.

Nothing is imported here, so importing one module of the package (bot.cli.errors, say) does not
load the whole command line.
"""
