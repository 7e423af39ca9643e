import sys

from todo_api.cli import main

sys.exit(main())
