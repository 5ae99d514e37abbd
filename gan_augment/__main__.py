import sys

from gan_augment.cli import main

sys.exit(main())
