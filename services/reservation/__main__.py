from services.chassis.app import main
from services.reservation.bootstrap import main as build

main(build)
