"""grucy's Hydra experiment runner: ``python -m runner model=gru data=sine``.

See README.md, "The experiment runner". ``runner.app.run(cfg, out_dir)`` runs one composed config.
"""
