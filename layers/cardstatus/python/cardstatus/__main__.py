import sys

from cardstatus.cli import main

sys.exit(main())
