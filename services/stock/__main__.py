from services.chassis.app import main
from services.stock.bootstrap import main as build

main(build)
