"""ScaleQuest: scalable math question synthesis from scratch (arXiv 2410.18693), as a library
behind the Snakemake workflow. Heavy dependencies (torch, vLLM) are imported lazily."""
__version__ = "0.1.0"
