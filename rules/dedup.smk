# Release, exact + near-duplicate detection: MinHash keys per best shard (rule screen,
# rules/screen.smk), listed once (minhash_list), one join job per LSH band (that band's bucket keys
# of every shard, nothing else), then one job that keeps the best row of each group of duplicates.
# The release drops what this finds.


rule minhash_list:
    input:
        minhash=all_shard_files("minhash"),
    output:
        MINHASH_LIST,
    localrule: True
    log:
        f"{RESULTS}/logs/dedup/minhash_list.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/minhash_list.py"


rule lsh_band:
    input:
        minhash_list=MINHASH_LIST,
    output:
        edges=band_file(),
    wildcard_constraints:
        band=r"\d+",
    log:
        f"{RESULTS}/logs/dedup/band_{{band}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/lsh_band.py"


rule dedup:
    input:
        minhash=all_shard_files("minhash"),
        bands=[band_file(band) for band in LSH_BANDS],
    output:
        duplicates=DUPLICATES_FILE,
    params:
        threshold=NEAR_DUP["threshold"],
    log:
        f"{RESULTS}/logs/dedup/dedup.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/dedup.py"
