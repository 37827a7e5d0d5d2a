import sys

from cardstatus_dev.cli import main

sys.exit(main())
