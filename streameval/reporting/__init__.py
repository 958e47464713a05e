"""The HTML report of a run: read its report and log, draw the figures, write one self-contained page."""
