import sys

from balancedrl.cli import main

sys.exit(main())
