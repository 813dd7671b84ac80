"""Wiring of the stock service: the one place its parts are put together."""
from __future__ import annotations

from bookrental.stock.v1 import stock_pb2, stock_pb2_grpc
from services.catalogue import STOCK
from services.chassis import app
from services.chassis.server import Service
from services.chassis.settings import Settings

from . import adapters, entrypoints
from .service import StockService


def main() -> None:
    settings = Settings.from_env(STOCK.name, grpc_port=STOCK.grpc_port, metrics_port=STOCK.metrics_port)
    runtime = app.start(settings, adapters.MODELS)
    service = StockService(runtime.uow, settings.stock_topic)
    app.serve(
        runtime,
        [Service(stock_pb2.DESCRIPTOR.services_by_name["StockService"].full_name,
                 entrypoints.StockServicer(service), stock_pb2_grpc.add_StockServiceServicer_to_server)],
        consume=[settings.reservation_topic],
        subscriptions=entrypoints.subscriptions(service),
    )
