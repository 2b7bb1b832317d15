# The embedded tiny default: the workflow with presets/tiny.yaml over config.yaml. profiles/local runs
# this file, so that a --configfile or --config of yours changes the demo instead of replacing its preset.
PRESET = "presets/tiny.yaml"


include: "../Snakefile"

# An included file's default target does not carry over to the file that includes it.
workflow.default_target = "all"
