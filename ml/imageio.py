"""Reading images the way the platform sees them: EXIF-upright, 8-bit RGB.

The one implementation lives in humanseg.core.images (PIL only: no Flask, Celery,
SQLAlchemy or torch), so training, evaluation, the predictor, upload validation
and the worker all orient and convert an image identically.
"""
from __future__ import annotations

from humanseg.core.images import load_oriented as load_image
from humanseg.core.images import to_rgb

__all__ = ["load_image", "to_rgb"]
