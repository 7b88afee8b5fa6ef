"""Run directories and what reads them: files, listing, figures, sampling."""
