import sys

from torchkata.cli import main

sys.exit(main())
