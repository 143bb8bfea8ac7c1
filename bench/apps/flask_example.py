"""The spec's Flask example server, serving one device's config dict."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from flask import Flask, Response, jsonify

app = Flask(__name__)
DEVICE_CONFIGS: dict[str, object] = {}


@app.route("/config/<device_id>", methods=["GET"])
def get_config(device_id: str) -> tuple[Response, int]:
    if device_id in DEVICE_CONFIGS:
        return jsonify(DEVICE_CONFIGS[device_id]), 200
    return jsonify({"error": "Device not found", "device_id": device_id}), 404


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="Port to bind.")
    parser.add_argument("--device", required=True, help="Device id to serve.")
    parser.add_argument("--body", type=Path, required=True, help="Config JSON file.")
    args = parser.parse_args()
    DEVICE_CONFIGS[args.device] = json.loads(args.body.read_bytes())
    # Access log off, as for the other servers: werkzeug logs each request at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host="127.0.0.1", port=args.port, debug=False)


if __name__ == "__main__":
    main()
