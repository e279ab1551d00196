import torch

# One thread: the suite's models are small, and on 2 shared cores two threads ran them
# several times slower and made timings erratic.
torch.set_num_threads(1)
