"""evidence-bot: collects evidence on public-sector outsourcing for an All-Party Parliamentary Group."""

__version__ = "0.1.0"
