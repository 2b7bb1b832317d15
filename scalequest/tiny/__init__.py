"""The embedded tiny default: models the project builds itself, no downloads."""
