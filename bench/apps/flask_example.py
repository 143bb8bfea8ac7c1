"""The spec's Flask example server, serving one device's config dict."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify

app = Flask(__name__)
logger = logging.getLogger(__name__)
DEVICE_CONFIGS: dict[str, Any] = {}


# The handlers follow the spec's example; its per-request INFO lines are kept
# but not emitted, since every server in the comparison runs without access log.
@app.route("/config/<device_id>", methods=["GET"])
def get_config(device_id: str) -> tuple[Response, int]:
    logger.info(f"Config request for device: {device_id}")
    if device_id in DEVICE_CONFIGS:
        config = DEVICE_CONFIGS[device_id]
        logger.info(f"Returning config for {device_id}: {config['device_type']}")
        return jsonify(config), 200
    logger.warning(f"Device not found: {device_id}")
    return jsonify({"error": "Device not found", "device_id": device_id}), 404


@app.route("/health", methods=["GET"])
def health() -> tuple[Response, int]:
    return jsonify({"status": "healthy", "service": "config-server"}), 200


@app.errorhandler(404)
def not_found(error: Exception) -> tuple[Response, int]:
    return jsonify({"error": "Not found", "message": str(error)}), 404


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="Port to bind.")
    parser.add_argument("--device", required=True, help="Device id to serve.")
    parser.add_argument("--body", type=Path, required=True, help="Config JSON file.")
    args = parser.parse_args()
    DEVICE_CONFIGS[args.device] = json.loads(args.body.read_bytes())
    logging.basicConfig(level=logging.WARNING)
    # Werkzeug sets its own logger to INFO, one line per request, unless told.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host="127.0.0.1", port=args.port, debug=False)


if __name__ == "__main__":
    main()
