"""humanseg.ml: training, evaluation and serving of the person-segmentation U-Net.

Imports nothing of Flask, Celery or SQLAlchemy; torch is imported lazily so that
ONNX Runtime serving works without it.
"""
