from services.alert.bootstrap import main as build
from services.chassis.app import main

main(build)
