from lockgate.cli.app import main

main()
