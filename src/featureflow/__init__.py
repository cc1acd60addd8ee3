"""featureflow: track sparse-autoencoder features through fine-tuning and model merging.

The package holds all logic of the Snakemake workflow in this repository; each stage module
runs on its own (from Python or pytest) and talks to the others only through files on disk.
"""

__version__ = "0.1.0"
