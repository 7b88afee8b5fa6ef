"""The course, lesson by lesson: ``dlrun tour`` runs each lesson's experiments and draws the
pictures of docs/course.md, and checks the numbers it promises."""
