// Small progressive enhancements of the review pages; every page works without them.
(function () {
  "use strict";

  // Report a clip that cannot be played instead of showing a silent black box.
  var clip = document.getElementById("clip");
  var clipError = document.getElementById("clip-error");
  if (clip && clipError) {
    clip.addEventListener("error", function () {
      var code = clip.error ? clip.error.code : "?";
      clipError.textContent = "video error " + code;
      clipError.classList.remove("hidden");
    });
  }

  // Without frame_wh from the edge, size the box overlay from the clean snapshot itself.
  var svg = document.getElementById("boxes");
  if (svg && !svg.getAttribute("viewBox")) {
    var href = svg.querySelector("image").getAttribute("href");
    var probe = new Image();
    probe.onload = function () {
      var w = probe.naturalWidth, h = probe.naturalHeight;
      svg.setAttribute("viewBox", "0 0 " + w + " " + h);
      var image = svg.querySelector("image");
      image.setAttribute("width", w);
      image.setAttribute("height", h);
    };
    probe.src = href;
  }

  // Highlight the current section in the top bar.
  var here = location.pathname.indexOf("/ui/dashboard") === 0 ? "dashboard" : "events";
  if (location.pathname.indexOf("/ui/queue") === 0) { here = "queue"; }  // issue 18
  var link = document.querySelector('[data-nav="' + here + '"]');
  if (link) { link.style.textDecoration = "underline"; }
})();
