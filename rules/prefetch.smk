# Hugging Face Hub models and datasets, fetched once into the shared cache ($HF_HOME) by a local
# rule on the submitting node, which has the network; every job then runs offline.
if PREFETCHED:

    rule prefetch:
        output:
            PREFETCHED,
        params:
            hub=HUB_ITEMS,
        localrule: True
        priority: 100
        log:
            f"{RESULTS}/logs/prefetch.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/prefetch.py"
