"""JSON endpoints: batch archive (streamed zip) and deletion."""
from flask import Blueprint

bp = Blueprint("archive", __name__)
