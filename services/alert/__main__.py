from services.chassis.app import main
from services.alert.bootstrap import main as build

main(build)
