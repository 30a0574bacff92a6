"""grucy's Hydra experiment runner: ``python -m runner model=gru data=sine``.

See docs/README_runner.md. ``runner.app.run(cfg, out_dir)`` runs one composed config.
"""
