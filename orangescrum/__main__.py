from orangescrum.cli import main

main()
