"""HTML pages: upload, batch view, gallery, job detail."""
from flask import Blueprint

bp = Blueprint(
    "gallery", __name__, template_folder="templates",
    static_folder="static", static_url_path="/assets",
)
