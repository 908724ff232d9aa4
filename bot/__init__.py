"""Scorebot's Chat-facing shell. Importing it cleans every log record of the process (`bot.logs`)."""

from bot.logs import install_log_cleaning

install_log_cleaning()
