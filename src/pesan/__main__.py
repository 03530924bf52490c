from pesan.cli import main

main()
