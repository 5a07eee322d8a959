"""A module that prints and exits when imported, as a script with argparse would."""

import sys

print("parsing arguments ...")
sys.exit(2)


def loss(student_logits, teacher_logits, temperature):   # never reached
    return student_logits.sum()
